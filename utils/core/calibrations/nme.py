from utils.core.calibrations import register_calibration
from utils.core.calibrations.base import Calibration
from utils.core.nme import class_means, embed, nme_logits


@register_calibration("nme")
class NearestMeanOfExemplars(Calibration):
    """Nearest mean of exemplars (iCaRL, Rebuffi et al. 2017) for any replay model: at evaluation the buffer's
    images are embedded by the backbone as it is now (eval mode) and each class's mean feature taken; an image
    goes to the nearest mean (utils/core/nme.py), so the head is never read. The means are computed again at every
    evaluation call (the network changes between evaluations, --eval_every's included; costs one forward of the
    buffer per call). The head's own accuracy is evaluated too and recorded beside (calibration_fit.head), as
    PyCIL reports CNN and NME. Training is untouched."""
    REPLACES_HEAD = True

    def logits(self, model, images):
        buffer = model.buffer
        if buffer.is_empty():  # the untrained network (--eval_future's baseline): the head's logits
            return model.net(images)
        features = embed(model.net, buffer.images[:buffer.size], model.normalize)
        means, present = class_means(features, buffer.labels[:buffer.size], model.n_classes)
        return nme_logits(model.net.features(images), means, present)
